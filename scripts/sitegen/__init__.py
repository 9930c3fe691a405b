"""The site generator: turns every module of `annotated_opt/` into an annotated page.

* `annotate` splits a Python source file into sections of notes and code (with `ast` and `tokenize`);
* `page` writes those sections as markdown for MkDocs (one two-column row per section);
* `katex` renders the math of every page to HTML at build time;
* `hooks` is the MkDocs hook module (`hooks:` in `mkdocs.yml`) that ties them together;
* `parallel` shares the build's independent runs (the certificates' checks, the results page's runs)
  among the machine's cores.
"""
