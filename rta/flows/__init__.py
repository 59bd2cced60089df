"""The Bytewax dataflow: sources, the steps the plan describes, and the sink into the store."""
