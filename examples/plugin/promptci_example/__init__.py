"""An example promptci plugin: the `word_count` comparator and the `reverse` provider."""
