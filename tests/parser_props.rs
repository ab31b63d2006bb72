//! Property tests on the command layer (docs/testing.md): any argument
//! vector, for any command in the table, parses to a plan or a Redis error
//! reply; it never panics, and key extraction never panics either.

use bytes::Bytes;
use proptest::prelude::*;
use raftcache::command::{self, table};

fn names() -> Vec<String> {
    let mut out = Vec::new();
    for spec in table::COMMANDS {
        out.push(spec.name.to_string());
        for sub in spec.subcommands {
            out.push(format!("{} {}", spec.name, sub.short_name()));
        }
    }
    out
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        prop_oneof![
            Just(b"EX".to_vec()),
            Just(b"PX".to_vec()),
            Just(b"NX".to_vec()),
            Just(b"XX".to_vec()),
            Just(b"GT".to_vec()),
            Just(b"KEEPTTL".to_vec()),
            Just(b"GET".to_vec()),
            Just(b"-1".to_vec()),
            Just(b"0".to_vec()),
            Just(b"9223372036854775807".to_vec()),
            Just(b"-9223372036854775808".to_vec()),
            Just(b"1e308".to_vec()),
            Just(b"nan".to_vec()),
            Just(b"*".to_vec()),
            Just(b"MATCH".to_vec()),
            Just(b"COUNT".to_vec()),
        ],
        (0i64..100).prop_map(|n| n.to_string().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn any_arguments_parse_or_error(
        name in proptest::sample::select(names()),
        args in proptest::collection::vec(arg(), 0..8),
        now in 0u64..u64::MAX / 2,
    ) {
        let mut argv: Vec<Bytes> = name.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
        argv.extend(args.into_iter().map(Bytes::from));
        match command::parse(&argv, now) {
            Ok(p) => {
                let _ = command::first_key(p.spec, &argv);
            }
            Err(reply) => {
                let raftcache::protocol::Reply::Error(text) = reply else {
                    panic!("a parse failure must be an error reply");
                };
                prop_assert!(text.split(' ').next().is_some_and(|code| code.chars().all(|c| c.is_ascii_uppercase())), "{text}");
            }
        }
    }

    #[test]
    fn arbitrary_names_never_panic(argv in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 1..6)) {
        let argv: Vec<Bytes> = argv.into_iter().map(Bytes::from).collect();
        let _ = command::parse(&argv, 1_700_000_000_000);
    }
}
