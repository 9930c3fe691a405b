"""Plot scripts: each module here defines `make()` and writes its figures with `style.save`."""
