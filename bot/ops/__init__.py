"""What operators and doc owners use: re-index control, stats, reports, metrics, logs."""
