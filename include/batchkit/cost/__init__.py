"""Cost: prices, the estimate before submitting, what a run used and paid, the run report."""
