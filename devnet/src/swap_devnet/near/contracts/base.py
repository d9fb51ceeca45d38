"""What a contract model is: a Python class whose public methods are called with JSON arguments, against a
host context that mirrors near-sdk's `env` (predecessor, deposit, gas, block, storage, logs, promises).

A model is installed on an account by deploying `contract_code(<code id>)` (or by naming it when creating a
devnet account); the runtime then dispatches FunctionCall actions and view calls to the marked methods.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from swap_devnet.near.ids import is_valid_account_id

CODE_PREFIX = b"swap-devnet-contract:"
MAX_U128 = 2**128 - 1
MAX_U64 = 2**64 - 1

C = TypeVar("C", bound="type[Contract]")
F = TypeVar("F", bound=Callable[..., Any])


class ContractPanic(Exception):
    """The contract aborted (near-sdk's `env::panic_str`); the receipt fails and its changes roll back."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PromiseRef:
    """Returned by a method to make the promise's result the call's result (`promise_return`)."""

    index: int


class HostContext(Protocol):
    current_account_id: str
    predecessor_account_id: str
    signer_account_id: str
    signer_account_pk: str
    attached_deposit: int
    prepaid_gas: int
    block_height: int
    block_timestamp: int
    receipt_id: str
    is_view: bool

    def used_gas(self) -> int: ...

    def account_balance(self) -> int: ...

    def storage_read(self, key: bytes) -> bytes | None: ...

    def storage_write(self, key: bytes, value: bytes) -> bool: ...

    def storage_remove(self, key: bytes) -> bool: ...

    def log(self, message: str) -> None: ...

    def sha256(self, data: bytes) -> bytes: ...

    def promise_function_call(
        self, account_id: str, method_name: str, args: bytes, deposit: int, gas: int, gas_weight: int = 1
    ) -> int: ...

    def promise_then(
        self,
        after: int,
        account_id: str,
        method_name: str,
        args: bytes,
        deposit: int,
        gas: int,
        gas_weight: int = 1,
    ) -> int: ...

    def promise_transfer(self, account_id: str, amount: int) -> int: ...

    def promise_results(self) -> list[bytes | None]:
        """Results of the promises this callback waited for, in order; None for a failed one."""
        ...


MethodKind = Literal["view", "call"]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    kind: MethodKind
    payable: bool
    private: bool
    func: Callable[[Contract, Args], Any]


def view(func: F) -> F:
    """A read-only method, callable from `query call_function` and from transactions."""
    func.__near_method__ = ("view", False, False)  # type: ignore[attr-defined]
    return func


def call(*, payable: bool = False, private: bool = False) -> Callable[[F], F]:
    """A state-changing method; `payable` accepts a deposit, `private` only from the contract itself."""

    def mark(func: F) -> F:
        func.__near_method__ = ("call", payable, private)  # type: ignore[attr-defined]
        return func

    return mark


_REGISTRY: dict[str, type[Contract]] = {}


def register(cls: C) -> C:
    _REGISTRY[cls.code_id] = cls
    return cls


def contract_code(code_id: str) -> bytes:
    """The code bytes that install the model `code_id` when deployed."""
    if code_id not in _REGISTRY:
        raise KeyError(f"no contract model {code_id!r}; known: {', '.join(sorted(_REGISTRY))}")
    return CODE_PREFIX + code_id.encode()


def contract_for_code(code: bytes) -> type[Contract] | None:
    if not code.startswith(CODE_PREFIX):
        return None
    return _REGISTRY.get(code[len(CODE_PREFIX) :].decode(errors="replace"))


def known_models() -> list[str]:
    return sorted(_REGISTRY)


class Contract:
    code_id: ClassVar[str]
    _methods: ClassVar[dict[str, MethodSpec]]

    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        methods: dict[str, MethodSpec] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                marker = getattr(attr, "__near_method__", None)
                if marker is not None:
                    kind, payable, private = marker
                    methods[name] = MethodSpec(name, kind, payable, private, attr)
        cls._methods = methods

    @classmethod
    def method(cls, name: str) -> MethodSpec | None:
        return cls._methods.get(name)

    # Helpers shared by the models ------------------------------------------------------------------------

    @staticmethod
    def panic(message: str) -> ContractPanic:
        return ContractPanic(message)

    def read_json(self, key: bytes) -> Any:
        raw = self.ctx.storage_read(key)
        return None if raw is None else json.loads(raw)

    def write_json(self, key: bytes, value: Any) -> None:
        self.ctx.storage_write(key, json.dumps(value, separators=(",", ":")).encode())

    def emit_event(self, standard: str, version: str, event: str, data: list[Mapping[str, Any]]) -> None:
        """A NEP-297 event log line."""
        payload = {"standard": standard, "version": version, "event": event, "data": data}
        self.ctx.log("EVENT_JSON:" + json.dumps(payload, separators=(",", ":")))

    def assert_one_yocto(self) -> None:
        if self.ctx.attached_deposit != 1:
            raise ContractPanic("Requires attached deposit of exactly 1 yoctoNEAR")


class Args:
    """JSON call arguments with near-sdk's typing: U128/U64 as decimal strings, account ids validated."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    @classmethod
    def parse(cls, raw: bytes) -> Args:
        if not raw:
            return cls({})
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ContractPanic(f"Failed to deserialize input from JSON.: {exc}") from None
        if not isinstance(data, dict):
            raise ContractPanic("Failed to deserialize input from JSON.: expected an object")
        return cls(data)

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._data

    def has(self, name: str) -> bool:
        return self._data.get(name) is not None

    def _get(self, name: str) -> Any:
        if name not in self._data:
            raise ContractPanic(f"Failed to deserialize input from JSON.: missing field `{name}`")
        return self._data[name]

    @staticmethod
    def _invalid(name: str, expected: str) -> ContractPanic:
        return ContractPanic(f"Failed to deserialize input from JSON.: invalid `{name}`, expected {expected}")

    def string(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise self._invalid(name, "a string")
        return value

    def optional_string(self, name: str) -> str | None:
        return None if self._data.get(name) is None else self.string(name)

    def account_id(self, name: str) -> str:
        value = self.string(name)
        if not is_valid_account_id(value):
            raise ContractPanic(f"Failed to deserialize input from JSON.: invalid account id `{value}`")
        return value

    def optional_account_id(self, name: str) -> str | None:
        return None if self._data.get(name) is None else self.account_id(name)

    def u128(self, name: str) -> int:
        return parse_uint(self._get(name), MAX_U128, lambda: self._invalid(name, "a U128 decimal string"))

    def u64(self, name: str) -> int:
        return parse_uint(self._get(name), MAX_U64, lambda: self._invalid(name, "a U64 decimal string"))

    def integer(self, name: str, default: int) -> int:
        """A plain JSON number (near-sdk's u64/u32 parameters), also accepted as a decimal string."""
        value = self._data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            raise self._invalid(name, "a number")
        if isinstance(value, int) and value >= 0:
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise self._invalid(name, "a number")

    def boolean(self, name: str, default: bool) -> bool:
        value = self._data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._invalid(name, "a boolean")
        return value

    def obj(self, name: str) -> Args:
        value = self._get(name)
        if not isinstance(value, dict):
            raise self._invalid(name, "an object")
        return Args(value)


def parse_uint(value: Any, maximum: int, error: Callable[[], ContractPanic]) -> int:
    """A decimal-string integer in [0, maximum]; near-sdk's U128/U64 also reject JSON numbers."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise error()
    number = int(value)
    if number > maximum:
        raise error()
    return number
