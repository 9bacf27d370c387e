"""Creator offboarding: when a creator counts as gone (rule), erasing them at Insider and locally (steps),
purging run files (run_files), and keeping later syncs from sending them again (skip). docs/offboarding.md."""
