"""`promptci view`: the local web app over the store and its static bundle. Pages are rendered with
reporting's pure functions; human reviews are read and written through viewer.reviews only."""
