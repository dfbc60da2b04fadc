"""How rltab's processes run: sealed offline, quiet libraries, progress bars.
Imports nothing of rltab's.
"""
