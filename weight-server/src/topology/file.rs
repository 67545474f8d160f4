//! Topology from a YAML or JSON file (see docs/ARCHITECTURE.md). Owned by the server-core engineer.
