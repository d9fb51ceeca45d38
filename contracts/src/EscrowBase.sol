// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title EscrowBase
/// @notice Hash-time-locked escrow shared by the source and destination sides of a swap.
/// @dev Funds unlock to the beneficiary against the SHA-256 preimage of the hashlock (SHA-256 so that the
///      NEAR side can verify the very same secret), or return to the depositor once the cancellation window
///      opens. Every window is an offset in seconds from `lockedAt`, the timestamp of the creating block.
abstract contract EscrowBase {
    struct Timelocks {
        uint32 withdrawal;
        uint32 publicWithdrawal;
        uint32 cancellation;
        uint32 publicCancellation;
    }

    enum State {
        Absent,
        Active,
        Withdrawn,
        Cancelled
    }

    struct Escrow {
        address depositor;
        address beneficiary;
        address operator;
        address token;
        uint256 amount;
        uint256 safetyDeposit;
        bytes32 hashlock;
        Timelocks timelocks;
        uint64 lockedAt;
        State state;
    }

    event EscrowCreated(
        bytes32 indexed id,
        address indexed depositor,
        address indexed beneficiary,
        address operator,
        address token,
        uint256 amount,
        uint256 safetyDeposit,
        bytes32 hashlock,
        Timelocks timelocks,
        uint64 lockedAt
    );
    event EscrowWithdrawn(bytes32 indexed id, bytes32 secret, address caller);
    event EscrowCancelled(bytes32 indexed id, address caller);

    error InvalidAmount();
    error InvalidTimelocks();
    error InvalidDeposit();
    error InvalidBeneficiary();
    error EscrowExists(bytes32 id);
    error NotActive(bytes32 id);
    error NotOperator();
    error TooEarly(uint256 opensAt);
    error TooLate(uint256 closedAt);
    error InvalidSecret();
    error InvalidSignature();
    error OrderExpired();
    error NonceUsed();
    error WrongResolver();
    error TransferFailed();
    error InvalidToken();
    error ReentrantCall();

    uint256 private constant _UNLOCKED = 1;
    uint256 private constant _LOCKED = 2;

    mapping(bytes32 => Escrow) private _escrows;
    uint256 private _lock = _UNLOCKED;

    modifier nonReentrant() {
        if (_lock != _UNLOCKED) revert ReentrantCall();
        _lock = _LOCKED;
        _;
        _lock = _UNLOCKED;
    }

    /// @notice The escrow stored under `id`; all fields zero (state Absent) when there is none.
    function getEscrow(bytes32 id) external view returns (Escrow memory) {
        return _escrows[id];
    }

    /// @notice The operator reveals the secret during the private withdrawal window.
    function withdraw(bytes32 id, bytes32 secret) external nonReentrant {
        Escrow storage e = _active(id);
        if (msg.sender != e.operator) revert NotOperator();
        _withdraw(id, e, secret, e.timelocks.withdrawal);
    }

    /// @notice Anyone holding the secret completes the withdrawal once the public window opens, earning the
    ///         safety deposit; this keeps the swap moving if the operator goes silent after the reveal.
    function publicWithdraw(bytes32 id, bytes32 secret) external nonReentrant {
        Escrow storage e = _active(id);
        _withdraw(id, e, secret, e.timelocks.publicWithdrawal);
    }

    /// @notice The operator returns the funds to the depositor once the cancellation window opens.
    function cancel(bytes32 id) external nonReentrant {
        Escrow storage e = _active(id);
        if (msg.sender != e.operator) revert NotOperator();
        _cancel(id, e, e.timelocks.cancellation);
    }

    /// @notice Anyone returns the funds to the depositor once the public cancellation window opens.
    function publicCancel(bytes32 id) external nonReentrant {
        Escrow storage e = _active(id);
        _cancel(id, e, e.timelocks.publicCancellation);
    }

    function _create(bytes32 id, Escrow memory e) internal {
        if (_escrows[id].state != State.Absent) revert EscrowExists(id);
        _escrows[id] = e;
        emit EscrowCreated(
            id,
            e.depositor,
            e.beneficiary,
            e.operator,
            e.token,
            e.amount,
            e.safetyDeposit,
            e.hashlock,
            e.timelocks,
            e.lockedAt
        );
    }

    function _active(bytes32 id) private view returns (Escrow storage e) {
        e = _escrows[id];
        if (e.state != State.Active) revert NotActive(id);
    }

    function _withdraw(bytes32 id, Escrow storage e, bytes32 secret, uint32 opensAfter) private {
        uint256 opensAt = uint256(e.lockedAt) + opensAfter;
        uint256 closesAt = uint256(e.lockedAt) + e.timelocks.cancellation;
        if (block.timestamp < opensAt) revert TooEarly(opensAt);
        if (block.timestamp >= closesAt) revert TooLate(closesAt);
        if (sha256(abi.encodePacked(secret)) != e.hashlock) revert InvalidSecret();

        e.state = State.Withdrawn;
        emit EscrowWithdrawn(id, secret, msg.sender);

        _pay(e.token, e.beneficiary, e.amount);
        _sendValue(msg.sender, e.safetyDeposit);
    }

    function _cancel(bytes32 id, Escrow storage e, uint32 opensAfter) private {
        uint256 opensAt = uint256(e.lockedAt) + opensAfter;
        if (block.timestamp < opensAt) revert TooEarly(opensAt);

        e.state = State.Cancelled;
        emit EscrowCancelled(id, msg.sender);

        _pay(e.token, e.depositor, e.amount);
        _sendValue(msg.sender, e.safetyDeposit);
    }

    /// @dev Windows must follow each other so that a withdrawal can never overlap a cancellation.
    function _checkTerms(uint256 amount, Timelocks calldata t) internal pure {
        if (amount == 0) revert InvalidAmount();
        if (
            t.withdrawal > t.publicWithdrawal ||
            t.publicWithdrawal >= t.cancellation ||
            t.cancellation > t.publicCancellation
        ) revert InvalidTimelocks();
    }

    function _pay(address token, address to, uint256 amount) private {
        if (token == address(0)) {
            _sendValue(to, amount);
        } else {
            _callToken(token, abi.encodeWithSelector(0xa9059cbb, to, amount)); // transfer(address,uint256)
        }
    }

    function _pullToken(address token, address from, uint256 amount) internal {
        // transferFrom(address,address,uint256)
        _callToken(token, abi.encodeWithSelector(0x23b872dd, from, address(this), amount));
    }

    /// @dev Accepts tokens that return nothing as well as those returning a bool; a call to an address
    ///      without code would "succeed" silently, hence the code check.
    function _callToken(address token, bytes memory data) private {
        if (token.code.length == 0) revert InvalidToken();
        (bool ok, bytes memory ret) = token.call(data);
        if (!ok || (ret.length != 0 && (ret.length != 32 || abi.decode(ret, (uint256)) != 1))) {
            revert TransferFailed();
        }
    }

    function _sendValue(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
