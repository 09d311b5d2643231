/* A decoy for test-symbols: a module whose one big function covers the offsets where
 * symmod's functions are, so that reading its .symtab for symmod's addresses would
 * name them "symdecoy_cover" (the file replaced on disk under a loaded module). */
void symdecoy_cover(void);

void
symdecoy_cover(void)
{
    __asm__ volatile(".skip 16384, 0x90");
}
