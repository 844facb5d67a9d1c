// SPDX-License-Identifier: MIT
/* Placeholder until the guest memory module lands: maps nothing. */
#include "mem/guest_mem.h"

#include <errno.h>
#include <string.h>

void gmem_init(struct gmem *m) { memset(m, 0, sizeof(*m)); }
int gmem_map(struct gmem *m, const struct gmem_region_desc *d, unsigned int n, const int *fds)
{ (void)m; (void)d; (void)n; (void)fds; return -ENOSYS; }
void gmem_unmap(struct gmem *m) { gmem_init(m); }
void *gmem_gpa_ptr(const struct gmem *m, uint64_t a, uint64_t l) { (void)m; (void)a; (void)l; return NULL; }
void *gmem_uva_ptr(const struct gmem *m, uint64_t a, uint64_t l) { (void)m; (void)a; (void)l; return NULL; }
int gmem_uva_to_gpa(const struct gmem *m, uint64_t a, uint64_t l, uint64_t *g)
{ (void)m; (void)a; (void)l; (void)g; return -EFAULT; }
