"""The lectures' own approaches, rewritten in pure Python."""
