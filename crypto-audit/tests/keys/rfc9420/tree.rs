//! tree-validation: openmls 0.9.2 parses and verifies every tree (signatures, parent
//! hashes, structure); tree hashes and resolutions are recomputed from the tree bytes with
//! the provider's SHA-256, per RFC 9420 §7.8 and §4.1.1.
use super::*;
use kith_crypto::mls::openmls::prelude::tls_codec::Deserialize as _;

struct Node<'a> {
    bytes: &'a [u8],
    unmerged_leaves: Vec<u32>,
}

/// Splits the serialized `optional<Node> tree<V>` into nodes.
fn parse_tree(tree: &[u8]) -> Vec<Option<Node<'_>>> {
    let mut outer = Reader::new(tree);
    let body = outer.vl();
    assert!(outer.is_done());
    let mut r = Reader::new(body);
    let mut nodes = Vec::new();
    while !r.is_done() {
        if r.u8() == 0 {
            nodes.push(None);
            continue;
        }
        let start = r.pos;
        let node_type = r.u8();
        let mut unmerged_leaves = Vec::new();
        match node_type {
            1 => skip_leaf_node(&mut r),
            2 => {
                r.vl();
                r.vl();
                let mut leaves = Reader::new(r.vl());
                while !leaves.is_done() {
                    unmerged_leaves.push(leaves.u32());
                }
            }
            other => panic!("unknown node type {other}"),
        }
        nodes.push(Some(Node {
            bytes: &body[start + 1..r.pos],
            unmerged_leaves,
        }));
    }
    nodes
}

fn skip_leaf_node(r: &mut Reader<'_>) {
    r.vl(); // encryption_key
    r.vl(); // signature_key
    r.u16(); // credential_type (basic: identity<V>; x509: certificates<V>)
    r.vl();
    for _ in 0..5 {
        r.vl(); // capabilities: versions, cipher_suites, extensions, proposals, credentials
    }
    match r.u8() {
        1 => {
            r.u64();
            r.u64();
        }
        2 => {}
        3 => {
            r.vl();
        }
        other => panic!("unknown leaf node source {other}"),
    }
    r.vl(); // extensions
    r.vl(); // signature
}

fn level(x: usize) -> u32 {
    (!x).trailing_zeros()
}

fn tree_hash(nodes: &[Option<Node<'_>>], x: usize, out: &mut [Vec<u8>]) -> Vec<u8> {
    let k = level(x);
    let input = if k == 0 {
        let leaf = match &nodes[x] {
            Some(node) => cat(&[&[1], node.bytes]),
            None => vec![0],
        };
        cat(&[&[1], &((x / 2) as u32).to_be_bytes(), &leaf])
    } else {
        let left = tree_hash(nodes, x ^ (1 << (k - 1)), out);
        let right = tree_hash(nodes, x ^ (3 << (k - 1)), out);
        let parent = match &nodes[x] {
            Some(node) => cat(&[&[1], node.bytes]),
            None => vec![0],
        };
        cat(&[&[2], &parent, &vl(&left), &vl(&right)])
    };
    let hash = crypto().hash(HASH, &input).expect("hash");
    out[x] = hash.clone();
    hash
}

fn resolution(nodes: &[Option<Node<'_>>], x: usize) -> Vec<u64> {
    match &nodes[x] {
        Some(node) => {
            let mut res = vec![x as u64];
            res.extend(node.unmerged_leaves.iter().map(|l| 2 * u64::from(*l)));
            res
        }
        None if level(x) == 0 => vec![],
        None => {
            let k = level(x);
            let mut res = resolution(nodes, x ^ (1 << (k - 1)));
            res.extend(resolution(nodes, x ^ (3 << (k - 1))));
            res
        }
    }
}

#[test]
fn tree_validation() {
    let c = crypto();
    for case in load("tree-validation") {
        let tree = h(&case, "tree");
        let group_id = GroupId::from_slice(&h(&case, "group_id"));
        RatchetTreeIn::tls_deserialize_exact(&tree)
            .expect("openmls parses the tree")
            .into_verified(
                Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
                &c,
                &group_id,
            )
            .expect("openmls verifies the tree");

        let expected: Vec<Vec<u8>> = case["tree_hashes"]
            .as_array()
            .expect("tree_hashes")
            .iter()
            .map(|v| hex::decode(v.as_str().expect("hex")).expect("hex"))
            .collect();
        let width = expected.len();
        let mut nodes = parse_tree(&tree);
        assert!(nodes.len() <= width);
        nodes.resize_with(width, || None);
        let root = (1usize << (usize::BITS - 1 - width.leading_zeros())) - 1;
        let mut hashes = vec![Vec::new(); width];
        tree_hash(&nodes, root, &mut hashes);
        assert_eq!(hashes, expected, "tree hashes");

        for (x, expected) in case["resolutions"]
            .as_array()
            .expect("resolutions")
            .iter()
            .enumerate()
        {
            let expected: Vec<u64> = expected
                .as_array()
                .expect("list")
                .iter()
                .map(|v| v.as_u64().expect("index"))
                .collect();
            assert_eq!(resolution(&nodes, x), expected, "resolution of node {x}");
        }
    }
}
