//! The `grafana-oncall` source: HTTP reading against a local server replaying fixtures written
//! from OnCall's API reference, the mapping rule by rule, a golden `map()` output, and the
//! reference evaluator against Muster's shift engine.

mod fixtures;
mod http;
mod mapping;
mod props;
