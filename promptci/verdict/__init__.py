"""The verdict layer: what a run or a diff cost (money), every gate, and THE exit-code policy of every command.

Pure: it decides from Runs, Comparisons and settings and prints nothing; every report renders its Verdict.
Kept import-free so that `promptci.verdict.money`, a leaf that even types.py uses, stays cheap."""
