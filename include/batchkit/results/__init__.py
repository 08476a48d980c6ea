"""Results: batch output and error files -> typed result rows, the best-answer order, the merge onto the input rows."""
