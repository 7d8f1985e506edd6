"""Scripts as written: YAML loading with positions, the script model, parsing, text, schema."""
