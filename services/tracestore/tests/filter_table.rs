//! The attribute filter's table (`testkit::filter_table`) against the store's search; the same
//! table runs against `cargo xtask search` (xtask/src/search.rs).

use testkit::filter_table::{CASES, SERVICE, filter, trace};
use tracestore::{
    filter::Attributes,
    store::{Query, Store},
};

#[test]
fn the_store_filters_as_jaeger_does() {
    let store = Store::with_max_traces(10);
    store.ingest(trace());
    for case in CASES {
        let query = Query {
            service_name: SERVICE.into(),
            start_time_max_nanos: u64::MAX,
            attributes: Attributes(filter(case)),
            num_traces: 10,
            ..Default::default()
        };
        assert_eq!(!store.find(&query).is_empty(), case.matches, "{:?}: {}", case.filter, case.why);
    }
}
