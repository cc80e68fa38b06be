"""The shop: workspace (DuckDB store), import with validation and quarantine, and the agent tools."""
