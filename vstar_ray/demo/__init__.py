"""The embedded demo: synthetic labeled videos and a tiny seed video-LMM, built by code, cached."""
