// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title TracemarkAnchor
/// @notice Anchors the signed tree heads of tracemark's append-only RFC 9162 log. A head is
/// accepted only if it is larger than the last one and an RFC 9162 consistency proof shows it
/// extends it, so not even an operator can anchor a forked or rewritten history. Any contract
/// can check a good's inclusion proof against an anchored head with `verifyInclusion`.
/// @dev CONSENSUS-CRITICAL: the proof checks mirror registry/merkle.py (RFC 9162 §2.1.3.2 and
/// §2.1.4.2) and are driven by the same test vectors. Hashes go through the SHA-256
/// precompile (address 0x02) from assembly: one call per node, no abi.encodePacked copies.
contract TracemarkAnchor {
    /// @notice A proof longer than this is refused before any hashing (a tree of 2^64
    /// leaves never needs more: 64 path nodes plus the consistency proof's seed).
    uint256 public constant MAX_PROOF_LENGTH = 65;

    // -- storage: the owner and the last anchored size share one slot ----------------------

    address public owner;
    uint64 public lastSize;
    /// @notice Root of every anchored tree size (zero: that size was never anchored).
    mapping(uint64 size => bytes32 root) public rootAt;
    mapping(address operator => bool) public isOperator;

    // -- events and errors -------------------------------------------------------------------

    event Anchored(uint64 indexed size, bytes32 root, uint64 previousSize);
    event OperatorAdded(address indexed operator);
    event OperatorRemoved(address indexed operator);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error NotOperator(address caller);
    error ZeroAddress();
    error ZeroRoot();
    error HeadNotLarger(uint64 size, uint64 lastSize);
    error ProofTooLong(uint256 length);
    error InconsistentHead(uint64 size, uint64 lastSize);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
        isOperator[msg.sender] = true;
        emit OwnershipTransferred(address(0), msg.sender);
        emit OperatorAdded(msg.sender);
    }

    // -- anchoring ---------------------------------------------------------------------------

    /// @notice Anchor the head (size, root), which must extend the last anchored head.
    /// @param consistencyProof RFC 9162 consistency proof from the last anchored size to
    /// `size` (empty for the first head).
    function anchor(uint64 size, bytes32 root, bytes32[] calldata consistencyProof) external {
        if (!isOperator[msg.sender]) revert NotOperator(msg.sender);
        if (root == bytes32(0)) revert ZeroRoot();
        uint64 previous = lastSize;
        if (size <= previous) revert HeadNotLarger(size, previous);
        if (consistencyProof.length > MAX_PROOF_LENGTH) {
            revert ProofTooLong(consistencyProof.length);
        }
        if (previous == 0) {
            // The empty tree is a prefix of every tree: nothing to prove.
            if (consistencyProof.length != 0) revert InconsistentHead(size, previous);
        } else if (!_consistent(previous, size, rootAt[previous], root, consistencyProof)) {
            revert InconsistentHead(size, previous);
        }
        lastSize = size;
        rootAt[size] = root;
        emit Anchored(size, root, previous);
    }

    /// @notice True only if `size` is an anchored head and `proof` is an RFC 9162 inclusion
    /// proof of `leafHash` at `index` in it.
    function verifyInclusion(bytes32 leafHash, uint64 index, uint64 size, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 root = rootAt[size];
        if (root == bytes32(0) || index >= size || proof.length > MAX_PROOF_LENGTH) return false;
        // RFC 9162 §2.1.3.2
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leafHash;
        for (uint256 i = 0; i < proof.length; ++i) {
            if (sn == 0) return false;
            if (fn & 1 == 1 || fn == sn) {
                r = _node(proof[i], r);
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = _node(r, proof[i]);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == root;
    }

    // -- operators -----------------------------------------------------------------------------

    function addOperator(address operator) external onlyOwner {
        if (operator == address(0)) revert ZeroAddress();
        isOperator[operator] = true;
        emit OperatorAdded(operator);
    }

    function removeOperator(address operator) external onlyOwner {
        isOperator[operator] = false;
        emit OperatorRemoved(operator);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    // -- RFC 9162 ------------------------------------------------------------------------------

    /// @dev RFC 9162 §2.1.4.2: does `proof` show the tree (size2, root2) extends (size1, root1)?
    function _consistent(
        uint64 size1,
        uint64 size2,
        bytes32 root1,
        bytes32 root2,
        bytes32[] calldata proof
    ) private view returns (bool) {
        // 1. If size1 is an exact power of two, the old root itself is the first node.
        bool seeded = size1 & (size1 - 1) == 0;
        uint256 length = proof.length + (seeded ? 1 : 0);
        if (length == 0) return false;
        uint256 fn = size1 - 1;
        uint256 sn = size2 - 1;
        // 2. Skip the levels where the old tree's last node is a right child.
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        // 3. Start both roots from the first node.
        bytes32 fr = seeded ? root1 : proof[0];
        bytes32 sr = fr;
        // 4. Fold in the rest.
        for (uint256 i = 1; i < length; ++i) {
            if (sn == 0) return false;
            bytes32 c = proof[seeded ? i - 1 : i];
            if (fn & 1 == 1 || fn == sn) {
                fr = _node(c, fr);
                sr = _node(c, sr);
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                sr = _node(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        // 5. Both roots must match and the path must have reached the top.
        return sn == 0 && fr == root1 && sr == root2;
    }

    /// @dev RFC 9162 §2.1.1 interior node: SHA-256(0x01 || left || right), via the precompile.
    function _node(bytes32 left, bytes32 right) private view returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            mstore(add(ptr, 1), left)
            mstore(add(ptr, 33), right)
            if iszero(staticcall(gas(), 0x02, ptr, 65, ptr, 32)) { revert(0, 0) }
            result := mload(ptr)
        }
    }
}
