"""The experiment layer: the Table 3 grid and its Ray backend, tables, comparisons and the claims,
reports, Table 2, the results page."""
