"""The pure domain: values in, values out, no I/O."""
