"""ganlab's data sets without Lightning: all of each data module's code.

``ganlab.data.<name>`` adds Lightning's base to each (the class a config names), so training runs
this code; ``evaluate`` builds these plain classes and never imports Lightning.
"""
