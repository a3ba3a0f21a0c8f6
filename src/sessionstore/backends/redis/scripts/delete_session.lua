-- Delete the whole session. Returns its last update time, or false if absent.
return drop()
