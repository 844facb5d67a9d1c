// SPDX-License-Identifier: MIT
/*
 * vhost-user-vsock: the daemon (daemon/daemon.c) over the real system:
 * kernel VFIO and /dev/vhost-vsock.
 */
#include "daemon/daemon.h"
#include "engine/kernel/kernel.h"
#include "transport/vvu/vfio.h"

int main(int argc, char **argv)
{
	const struct daemon_env env = {
		.vfio_open = vfio_sys_open,
		.vhost = &kern_vhost_sys,
	};

	return daemon_main(argc, argv, &env);
}
