"""Foundation pieces every layer uses: errors, references, ids, clock, hashing."""
