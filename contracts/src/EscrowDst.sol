// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {EscrowBase} from "./EscrowBase.sol";

/// @title EscrowDst
/// @notice Destination-side escrow: the resolver locks its own ERC-20 tokens or native ETH for the maker's
///         receiving address, plus an ETH safety deposit. The resolver is both depositor and operator.
contract EscrowDst is EscrowBase {
    struct DstParams {
        address beneficiary;
        address token;
        uint256 amount;
        bytes32 hashlock;
        Timelocks timelocks;
        uint256 safetyDeposit;
        uint256 salt;
    }

    /// @notice Id of the escrow `depositor` would create with `p`; `salt` lets one resolver open several
    ///         escrows on otherwise identical terms.
    function dstEscrowId(address depositor, DstParams calldata p) public pure returns (bytes32) {
        return keccak256(abi.encode(depositor, p));
    }

    /// @notice Locks `p.amount` of `p.token` (address(0) = native ETH) for `p.beneficiary`. Native locks
    ///         attach amount + safety deposit as value; ERC-20 locks attach the safety deposit and pull the
    ///         tokens via allowance.
    function createDstEscrow(DstParams calldata p) external payable nonReentrant returns (bytes32 id) {
        if (p.beneficiary == address(0)) revert InvalidBeneficiary();
        _checkTerms(p.amount, p.timelocks);

        bool native = p.token == address(0);
        uint256 expectedValue = native ? p.amount + p.safetyDeposit : p.safetyDeposit;
        if (msg.value != expectedValue) revert InvalidDeposit();

        id = dstEscrowId(msg.sender, p);
        _create(
            id,
            Escrow({
                depositor: msg.sender,
                beneficiary: p.beneficiary,
                operator: msg.sender,
                token: p.token,
                amount: p.amount,
                safetyDeposit: p.safetyDeposit,
                hashlock: p.hashlock,
                timelocks: p.timelocks,
                lockedAt: uint64(block.timestamp),
                state: State.Active
            })
        );
        if (!native) _pullToken(p.token, msg.sender, p.amount);
    }
}
