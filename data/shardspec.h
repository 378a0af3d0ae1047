// shardspec.h — shard specifications: from a spec string to a list of shard paths, and the
// split of that list over ranks and reader threads.
//
// Owns the spec syntax:
//   spec    := source ( "::" source )*            sources are concatenated in order
//   source  := "@" FILE                            a list file: one pattern per line; blank
//                                                  lines and lines starting with '#' ignored;
//                                                  relative lines are relative to FILE's folder
//            | pattern ( "," pattern )*            commas outside braces separate patterns
//   pattern := text with brace groups and glob characters
//     {000000..000999}   a numeric range, inclusive, ascending or descending; zero-padded to the
//                        longer end's width when either end has a leading zero; optional step
//                        {0..100..10}
//     {a,b,c}            alternatives (may nest and contain ranges)
//     * ? [..]           after brace expansion, a pattern with glob characters is expanded by
//                        glob(3) (sorted); no match is an error naming the pattern
// Brace-expanded paths are not checked for existence (the loader reports missing shards).
// Example: "/data/laion/{00000..00099}.tar::/data/cc12m/*.tar.zst::@extra_shards.txt".
//
// Split: the list is dealt to ranks first (shard i goes to rank i % world), then each rank's
// share to its reader threads (the j-th shard of the rank goes to reader j % readers); so the
// readers of all ranks cover the list exactly once. Fewer shards than world * readers is an
// error (each reader needs one shard at least).
#ifndef VLT_DATA_SHARDSPEC_H
#define VLT_DATA_SHARDSPEC_H

#include <stddef.h>

#include "autograd/error.h"

// Largest expansion accepted: a million shards (10^10 samples at 10,000 a shard). A typo such as
// {000..0009000900} otherwise builds 9 million paths (5 s, 420 MB) before anything reads them
// (found by fuzz_shardspec).
#define VLT_SHARDSPEC_MAX 1000000

typedef struct {
    char **paths;   // n malloc'd paths, in spec order
    size_t n;
} vlt_shard_list;

vlt_status vlt_shardspec_expand(const char *spec, vlt_shard_list *out);
void vlt_shard_list_free(vlt_shard_list *l);

// Positions (into a list of n shards) that reader `reader` of rank `rank` reads, in order:
// *idx is malloc'd with *count entries. Errors: bad rank/reader numbers, or n < world*readers.
vlt_status vlt_shardspec_split(size_t n, int rank, int world, int reader, int readers,
                               size_t **idx, size_t *count);

#endif
