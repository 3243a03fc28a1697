"""Unit grids (万米单元网格): cutting units into coded square cells, and grouping them into management tiers."""
