"""Models and their building blocks (torch). Import submodules directly."""
