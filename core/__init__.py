"""What the database layer (db/), the web layer (web/) and the benchmarks (bench/) share:
the rules Python must know by value, the SQLSTATE registry and token signing.
Nothing here imports db or web."""
