package upload

// BuffersAllocated is how many part buffers u allocated: what its memory
// use is bounded by. Read it only when u's writer is not running.
func BuffersAllocated(u *Uploader) int { return u.allocated }
