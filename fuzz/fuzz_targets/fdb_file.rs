//! The `--fdb` file and `vxdp fdb` argument parsers on any text: never panic; an
//! accepted file's entries print and parse back to the same entries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vxdp_control::entry::{parse_fdb_args, parse_fdb_file};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(entries) = parse_fdb_file(text) {
        let printed: String = entries
            .iter()
            .map(|(mac, r)| {
                let mut l = format!("{mac} dst {}", r.ip);
                if let Some(p) = r.port {
                    l += &format!(" port {p}");
                }
                if let Some(v) = r.vni {
                    l += &format!(" vni {v}");
                }
                l + "\n"
            })
            .collect();
        assert_eq!(parse_fdb_file(&printed).expect("printed entries parse"), entries);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let _ = parse_fdb_args(&words);
});
