//! Store answers on any bytes: a Consul KV listing (JSON, base64 values) decodes or
//! fails cleanly; every key/value goes through the key schema and the store-value
//! validator without panicking, and nothing the validator admits breaks its rules.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxdp_control::consul::client::KvPair;
use vxdp_control::consul::Keys;
use vxdp_control::validate::{check_entry, StoreRules, StoreValidator};

fuzz_target!(|data: &[u8]| {
    let keys = Keys::new("vxdp/", vxdp_common::Vni::new(42).unwrap());
    let rules = StoreRules { own: ["192.0.2.1".parse().unwrap()].into(), max_entries: 8, ..Default::default() };
    let mut v = StoreValidator::new("fuzz", rules.clone());
    let pairs: Vec<(String, Vec<u8>, bool)> = match serde_json::from_slice::<Vec<KvPair>>(data) {
        Ok(listing) => listing.into_iter().map(|p| (p.key, p.value, p.session.is_some())).collect(),
        // Not a listing: split into key NUL value, as one pair.
        Err(_) => {
            let (k, val) = match data.iter().position(|b| *b == 0) {
                Some(i) => (&data[..i], &data[i + 1..]),
                None => (data, &b""[..]),
            };
            vec![(String::from_utf8_lossy(k).into_owned(), val.to_vec(), false)]
        }
    };
    v.begin();
    let mut admitted = 0;
    for (key, value, held) in &pairs {
        if let Ok(Some((mac, remote))) = keys.parse(key, value) {
            if v.admit(key, mac, &remote, *held) {
                admitted += 1;
                assert!(check_entry(mac, &remote, *held, &rules).is_ok());
            }
        }
    }
    assert!(admitted <= rules.max_entries);
    v.end();
});
