// SPDX-License-Identifier: GPL-2.0-only
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/uapi_compat.h"
#include "lib/uffd.h"

bool have_wp_async(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = !ioctl(fd, UFFDIO_API, &api) && (api.features & UFFD_FEATURE_WP_ASYNC) &&
	     (api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	close(fd);
	return ok;
}
