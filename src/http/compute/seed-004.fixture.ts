/**
 * The one result of seed 004's example response, verbatim: the contract the compute
 * listing's tests compare every result's keys and value types against.
 */
export const SEED_004_RESULT: unknown = {
  "hydra_machine_version": "0.0.1",
  "id": "QVzJ6dGqpS6bsaY0qdZLtC",
  "pid": 94890,
  "status": "running",
  "runtime": "nodejs",
  "runtime_version": "4165",
  "memory": "512.00 MB",
  "rootfs": "/home/compute/machines/ABCD1234/QVzJ6dGqpS6bsaY0qdZLtC/rootfs",
  "created": "2025-07-07T12:19:37.195049286Z",
  "annotations": {
    "account": "ABCD1234",
    "bundle": "/home/compute",
    "cpu": "824671010504",
    "hydra.node": "mc-eu-two",
    "machine": "QVzJ6dGqpS6bsaY0qdZLtC",
    "mem": "512MB",
    "namespace": "1753641292",
    "runtime.version": "4165",
    "service": "112623013",
    "service.auto": "%strue",
    "service.handler": "/main.main",
    "service.version": "5116"
  },
  "owner": "ABCD1234",
  "stats": {
    "CgroupStats": {
      "blkio_stats": {
        "io_service_bytes_recursive": [
          {
            "major": 9,
            "minor": 2,
            "op": "Read"
          },
          {
            "major": 9,
            "minor": 2,
            "op": "Write",
            "value": 114688
          }
        ],
        "io_serviced_recursive": [
          {
            "major": 9,
            "minor": 2,
            "op": "Read"
          },
          {
            "major": 9,
            "minor": 2,
            "op": "Write",
            "value": 25
          }
        ],
        "psi": {
          "full": {
            "avg10": 0,
            "avg300": 0,
            "avg60": 0,
            "total": 0
          },
          "some": {
            "avg10": 0,
            "avg300": 0,
            "avg60": 0,
            "total": 0
          }
        }
      },
      "cpu_stats": {
        "cpu_usage": {
          "percpu_usage_in_kernelmode": null,
          "percpu_usage_in_usermode": null,
          "total_usage": 494712000,
          "usage_in_kernelmode": 62501000,
          "usage_in_usermode": 432211000
        },
        "psi": {
          "full": {
            "avg10": 0,
            "avg300": 0,
            "avg60": 0,
            "total": 1434
          },
          "some": {
            "avg10": 0,
            "avg300": 0,
            "avg60": 0,
            "total": 1434
          }
        },
        "throttling_data": {
          "periods": 318
        }
      },
      "cpuset_stats": {
        "cpu_exclusive": 0,
        "mem_exclusive": 0,
        "mem_hardwall": 0,
        "memory_migrate": 0,
        "memory_pressure": 0,
        "memory_spread_page": 0,
        "memory_spread_slab": 0,
        "sched_load_balance": 0,
        "sched_relax_domain_level": 0
      },
      "memory_stats": {
        "cache": 40960,
        "kernel_tcp_usage": {
          "failcnt": 0,
          "limit": 0
        },
        "kernel_usage": {
          "failcnt": 0,
          "limit": 0
        },
        "page_usage_by_numa": {
          "anon": {},
          "file": {},
          "hierarchical": {
            "anon": {},
            "file": {},
            "total": {},
            "unevictable": {}
          },
          "total": {},
          "unevictable": {}
        },
        "psi": {
          "full": {
            "avg10": 0,
            "avg300": 0,
            "avg60": 0,
            "total": 0
          },
          "some": {
            "avg10": 0,
            "avg300": 0,
            "avg60": 0,
            "total": 0
          }
        },
        "stats": {
          "active_anon": 29196288,
          "active_file": 0,
          "anon": 29196288,
          "anon_thp": 0,
          "file": 40960,
          "file_dirty": 0,
          "file_mapped": 0,
          "file_thp": 0,
          "file_writeback": 0,
          "inactive_anon": 0,
          "inactive_file": 40960,
          "kernel": 1617920,
          "kernel_stack": 180224,
          "pagetables": 966656,
          "percpu": 10880,
          "pgactivate": 0,
          "pgdeactivate": 0,
          "pgfault": 16794,
          "pglazyfree": 0,
          "pglazyfreed": 0,
          "pgmajfault": 0,
          "pgrefill": 0,
          "pgscan": 0,
          "pgscan_direct": 0,
          "pgscan_khugepaged": 0,
          "pgscan_kswapd": 0,
          "pgsteal": 0,
          "pgsteal_direct": 0,
          "pgsteal_khugepaged": 0,
          "pgsteal_kswapd": 0,
          "sec_pagetables": 0,
          "shmem": 0,
          "shmem_thp": 0,
          "slab": 444776,
          "slab_reclaimable": 113824,
          "slab_unreclaimable": 330952,
          "sock": 0,
          "swapcached": 0,
          "thp_collapse_alloc": 0,
          "thp_fault_alloc": 0,
          "thp_swpout": 0,
          "thp_swpout_fallback": 0,
          "unevictable": 0,
          "vmalloc": 0,
          "workingset_activate_anon": 0,
          "workingset_activate_file": 0,
          "workingset_nodereclaim": 0,
          "workingset_refault_anon": 0,
          "workingset_refault_file": 0,
          "workingset_restore_anon": 0,
          "workingset_restore_file": 0,
          "zswap": 0,
          "zswapped": 0,
          "zswpin": 0,
          "zswpout": 0,
          "zswpwb": 0
        },
        "swap_only_usage": {
          "failcnt": 0,
          "limit": 0
        },
        "swap_usage": {
          "failcnt": 0,
          "limit": 1073741824,
          "usage": 30855168
        },
        "usage": {
          "failcnt": 0,
          "limit": 1073741824,
          "max_usage": 32432128,
          "usage": 30855168
        },
        "use_hierarchy": true
      },
      "pids_stats": {
        "current": 11,
        "limit": 231354
      },
      "rdma_stats": {}
    },
    "IntelRdtStats": null,
    "Interfaces": [
      {
        "Name": "hh00",
        "RxBytes": 440358,
        "RxDropped": 0,
        "RxErrors": 0,
        "RxPackets": 1640,
        "TxBytes": 688993,
        "TxDropped": 0,
        "TxErrors": 0,
        "TxPackets": 1911
      }
    ]
  },
  "type": "Compute Function"
};
