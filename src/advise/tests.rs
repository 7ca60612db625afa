#[test] fn data_parses() { assert!(!super::data::data().families.is_empty()); }
