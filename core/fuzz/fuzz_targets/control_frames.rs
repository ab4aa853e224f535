//! Fuzzes the decoders of the group engine's control frames that any device may seal to
//! another's device key (branch-lost, fork notice, join hash), of the lineage a Welcome's GroupInfo
//! carries and of the admin list a group context carries: any bytes decode or are refused
//! cleanly, and what decodes re-encodes to the same value.
#![no_main]
use kith_core::group::{decode_admins, encode_admins, BranchLost, ForkNotice, JoinHash, Lineage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(lost) = BranchLost::decode(data) {
        assert_eq!(BranchLost::decode(&lost.encode()), Some(lost));
    }
    if let Some(notice) = ForkNotice::decode(data) {
        assert_eq!(ForkNotice::decode(&notice.encode()), Some(notice));
    }
    if let Some(join_hash) = JoinHash::decode(data) {
        assert_eq!(JoinHash::decode(&join_hash.encode()), Some(join_hash));
    }
    if let Some(lineage) = Lineage::decode(data) {
        assert_eq!(Lineage::decode(&lineage.encode()), Some(lineage));
    }
    if let Some(admins) = decode_admins(data) {
        assert_eq!(encode_admins(&admins), data);
    }
});
