// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {EscrowBase} from "./EscrowBase.sol";

/// @title EscrowSrc
/// @notice Source-side escrow: the maker signs an EIP-712 order off-chain and the named resolver submits it,
///         locking the maker's ERC-20 tokens (pulled via allowance) together with the resolver's ETH safety
///         deposit. The order's EIP-712 digest is the escrow id.
contract EscrowSrc is EscrowBase {
    struct Order {
        address maker;
        address resolver;
        address token;
        uint256 amount;
        bytes32 hashlock;
        Timelocks timelocks;
        uint256 safetyDeposit;
        bytes32 dstTermsHash;
        uint256 nonce;
        uint256 deadline;
    }

    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _NAME_HASH = keccak256("SwapEscrowSrc");
    bytes32 private constant _VERSION_HASH = keccak256("1");
    bytes32 private constant _TIMELOCKS_TYPEHASH =
        keccak256("Timelocks(uint32 withdrawal,uint32 publicWithdrawal,uint32 cancellation,uint32 publicCancellation)");
    bytes32 private constant _ORDER_TYPEHASH =
        keccak256(
            "Order(address maker,address resolver,address token,uint256 amount,bytes32 hashlock,"
            "Timelocks timelocks,uint256 safetyDeposit,bytes32 dstTermsHash,uint256 nonce,uint256 deadline)"
            "Timelocks(uint32 withdrawal,uint32 publicWithdrawal,uint32 cancellation,uint32 publicCancellation)"
        );

    /// @dev Upper bound of a canonical ECDSA `s` (secp256k1n / 2); the mirrored value would be a second valid
    ///      signature for the same order.
    uint256 private constant _MAX_S = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    mapping(address => mapping(uint256 => bool)) private _nonceUsed;

    constructor() {
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    /// @notice EIP-712 domain separator; recomputed after a chain fork changes the chain id.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    /// @notice The EIP-712 digest the maker signs; it is also the id of the escrow the order creates.
    function hashOrder(Order calldata order) public view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR(), _hashOrderStruct(order)));
    }

    function nonceUsed(address maker, uint256 nonce) external view returns (bool) {
        return _nonceUsed[maker][nonce];
    }

    /// @notice Locks the maker's tokens under the order's terms. Only the resolver named in the order may
    ///         submit it, and it must attach exactly the safety deposit.
    function createSrcEscrow(
        Order calldata order,
        bytes calldata signature
    ) external payable nonReentrant returns (bytes32 id) {
        if (msg.sender != order.resolver) revert WrongResolver();
        if (block.timestamp > order.deadline) revert OrderExpired();
        if (order.token == address(0)) revert InvalidToken();
        _checkTerms(order.amount, order.timelocks);
        if (_nonceUsed[order.maker][order.nonce]) revert NonceUsed();

        id = hashOrder(order);
        if (order.maker == address(0) || _recover(id, signature) != order.maker) revert InvalidSignature();
        if (msg.value != order.safetyDeposit) revert InvalidDeposit();

        _nonceUsed[order.maker][order.nonce] = true;
        _create(
            id,
            Escrow({
                depositor: order.maker,
                beneficiary: order.resolver,
                operator: order.resolver,
                token: order.token,
                amount: order.amount,
                safetyDeposit: order.safetyDeposit,
                hashlock: order.hashlock,
                timelocks: order.timelocks,
                lockedAt: uint64(block.timestamp),
                state: State.Active
            })
        );
        _pullToken(order.token, order.maker, order.amount);
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, block.chainid, address(this)));
    }

    function _hashOrderStruct(Order calldata o) private pure returns (bytes32) {
        Timelocks calldata t = o.timelocks;
        bytes32 timelocksHash = keccak256(
            abi.encode(_TIMELOCKS_TYPEHASH, t.withdrawal, t.publicWithdrawal, t.cancellation, t.publicCancellation)
        );
        // Every member encodes to one 32-byte word, so two concatenated halves equal a single abi.encode
        // (split only to stay within the EVM's stack reach).
        return
            keccak256(
                bytes.concat(
                    abi.encode(_ORDER_TYPEHASH, o.maker, o.resolver, o.token, o.amount, o.hashlock),
                    abi.encode(timelocksHash, o.safetyDeposit, o.dstTermsHash, o.nonce, o.deadline)
                )
            );
    }

    /// @dev Strict 65-byte r || s || v with v in {27, 28} and low s; returns address(0) when malformed.
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v != 27 && v != 28) return address(0);
        if (uint256(s) > _MAX_S) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
