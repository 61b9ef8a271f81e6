"""Runtime for gallery installations that morph between portraits of imaginary people.

This package runs on the exhibition PC and never imports torch: the workshop side that
needs torch lives in the separate ``export`` package.
"""
