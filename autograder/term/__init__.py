"""A term's operations around grading: intake of downloads, feedback pages, exports, the gradebook."""
