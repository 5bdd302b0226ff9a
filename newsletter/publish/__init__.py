"""Publishing: the static web archive of sent issues."""
