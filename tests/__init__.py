"""remit's test suite: a folder per layer of src/remit/, as the specification."""
