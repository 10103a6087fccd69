"""Arrow schemas as code: the input manifest, the score table's base columns, one module per scorer."""
