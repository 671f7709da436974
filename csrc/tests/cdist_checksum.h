/* For check_kernels.c: a fingerprint of pl_cdist_block's bits per SIMD path. */
#ifndef PARLAB_CDIST_CHECKSUM_H
#define PARLAB_CDIST_CHECKSUM_H

/* Prints "PATH HASH" for each path this CPU runs: a 64-bit FNV-1a hash of the
 * bytes (little-endian) of every distance of a fixed set of matrices, which
 * an integer generator makes the same on every architecture. Returns 0, or 1
 * if out of memory. */
int pl_print_cdist_checksums(void);

#endif
