//! RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256: leaf and node hashes, the tree head,
//! inclusion and consistency proofs and their verification, and `Frontier`, the compact range
//! that keeps a growing tree's head in O(log n) memory. Pure.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// `SHA-256(0x00 || leaf)`: the prefix keeps a leaf from ever passing for an inner node.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(leaf);
    hasher.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two smaller than `n` (n ≥ 2): where RFC 6962 splits a tree.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The tree head of the leaves whose hashes are `leaves` (MTH in RFC 6962; the empty tree's is
/// SHA-256 of nothing).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` in the tree of `leaves` (PATH in RFC 6962), or None when the
/// index is outside it.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split(d.len());
        if m < k {
            path(m, &d[..k], out);
            out.push(root(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    path(index, leaves, &mut out);
    Some(out)
}

/// The proof that the tree of the first `first` leaves is a prefix of the tree of `leaves`
/// (PROOF in RFC 6962), or None when `first` is larger than the tree.
pub fn consistency_proof(leaves: &[Hash], first: usize) -> Option<Vec<Hash>> {
    if first > leaves.len() {
        return None;
    }
    if first == 0 || first == leaves.len() {
        return Some(Vec::new());
    }
    fn subproof(m: usize, d: &[Hash], whole: bool, out: &mut Vec<Hash>) {
        let n = d.len();
        if m == n {
            if !whole {
                out.push(root(d));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &d[..k], whole, out);
            out.push(root(&d[k..]));
        } else {
            subproof(m - k, &d[k..], false, out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    subproof(first, leaves, true, &mut out);
    Some(out)
}

/// Whether `proof` shows the leaf hashed `leaf` at `index` in the tree of `size` leaves whose head
/// is `root` (RFC 9162, 2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Whether `proof` shows the tree of `first` leaves with head `first_root` to be a prefix of the
/// tree of `second` leaves with head `second_root` (RFC 9162, 2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *first_root && sr == *second_root && snode == 0
}

/// A growing tree kept as its perfect subtrees, largest first (a compact range): appending is
/// amortised O(1) and the head is O(log n), so the daemon never re-reads the whole log to sign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, hash) of each perfect subtree, left to right.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        self.size += 1;
        self.peaks.push((0, leaf));
        while let [.., (h1, left), (h2, right)] = self.peaks[..] {
            if h1 != h2 {
                break;
            }
            self.peaks.truncate(self.peaks.len() - 2);
            self.peaks.push((h1 + 1, node_hash(&left, &right)));
        }
    }

    /// The tree head: the peaks folded from the right, which is RFC 6962's split at the largest
    /// power of two applied again and again.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some((_, last)) = peaks.next() else {
            return root(&[]);
        };
        peaks.fold(*last, |acc, (_, left)| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn h(s: &str) -> Hash {
        unhex(s).try_into().unwrap()
    }

    /// The Certificate Transparency reference leaves (RFC 6962 test data) and their tree heads for
    /// sizes 0 to 8.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference() -> Vec<Hash> {
        LEAVES.iter().map(|l| leaf_hash(&unhex(l))).collect()
    }

    #[test]
    fn tree_heads_are_the_rfc_6962_reference_ones() {
        let leaves = reference();
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), h(ROOTS[0]));
        for n in 0..=8 {
            assert_eq!(root(&leaves[..n]), h(ROOTS[n]), "size {n}");
            if n > 0 {
                frontier.push(leaves[n - 1]);
                assert_eq!(frontier.root(), h(ROOTS[n]), "frontier size {n}");
            }
        }
    }

    #[test]
    fn proofs_are_the_rfc_6962_reference_ones() {
        let leaves = reference();
        let inclusion = [
            (
                0,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                vec![
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, expected) in inclusion {
            let expected: Vec<Hash> = expected.into_iter().map(h).collect();
            assert_eq!(inclusion_proof(&leaves, index).unwrap(), expected);
            assert!(verify_inclusion(
                &leaves[index],
                index as u64,
                8,
                &expected,
                &h(ROOTS[8])
            ));
        }
        let consistency = [
            (
                2,
                8,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                2,
                5,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (first, second, expected) in consistency {
            let expected: Vec<Hash> = expected.into_iter().map(h).collect();
            assert_eq!(
                consistency_proof(&leaves[..second], first).unwrap(),
                expected
            );
            assert!(verify_consistency(
                first as u64,
                second as u64,
                &h(ROOTS[first]),
                &h(ROOTS[second]),
                &expected
            ));
        }
    }

    #[test]
    fn every_proof_verifies_and_a_mangled_one_does_not() {
        let leaves: Vec<Hash> = (0..37u8).map(|i| leaf_hash(&[i, i ^ 0x5a])).collect();
        for n in 1..=leaves.len() {
            let tree = &leaves[..n];
            let head = root(tree);
            let mut frontier = Frontier::default();
            tree.iter().for_each(|l| frontier.push(*l));
            assert_eq!(frontier.root(), head, "frontier of {n}");
            for i in 0..n {
                let proof = inclusion_proof(tree, i).unwrap();
                assert!(verify_inclusion(
                    &tree[i], i as u64, n as u64, &proof, &head
                ));
                // Another leaf, another index, or a changed path must all fail.
                assert!(
                    !verify_inclusion(&tree[(i + 1) % n], i as u64, n as u64, &proof, &head)
                        || n == 1
                );
                if !proof.is_empty() {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_inclusion(&tree[i], i as u64, n as u64, &bad, &head));
                }
            }
            for m in 0..=n {
                let proof = consistency_proof(tree, m).unwrap();
                let old = root(&tree[..m]);
                assert!(
                    verify_consistency(m as u64, n as u64, &old, &head, &proof),
                    "{m} -> {n}"
                );
                if m > 0 && m < n {
                    let mut bad = proof.clone();
                    let last = bad.len() - 1;
                    bad[last][5] ^= 0x80;
                    assert!(!verify_consistency(m as u64, n as u64, &old, &head, &bad));
                    // A tree that rewrote its history is not consistent with the old head.
                    let mut rewritten = tree.to_vec();
                    rewritten[m - 1][0] ^= 1;
                    let forged = consistency_proof(&rewritten, m).unwrap();
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64,
                        &old,
                        &root(&rewritten),
                        &forged
                    ));
                }
            }
        }
        assert!(inclusion_proof(&leaves, leaves.len()).is_none());
        assert!(!verify_inclusion(&leaves[0], 3, 3, &[], &leaves[0]));
    }
}
