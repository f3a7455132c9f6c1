"""The experiment layer: the Table 3 grid and its Ray backend, tables, reports, Table 2."""
