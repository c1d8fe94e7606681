//! Low-priority threads for the export: the render thread and every streaming thread of
//! the export's pipeline run at nice [`NICE`], so rendering never competes with live
//! forwarding or recording.
//!
//! Why a task pool of our own: GStreamer's streaming threads come from GLib's shared
//! pool, created with the scheduling settings of whichever thread first needed it (nice 0
//! in the server) and reused by every pipeline; renicing the render thread alone does not
//! reach them, and renicing pooled threads would slow the live recorders that reuse them.
//!
//! Invariant: only the export's own pipeline gets this pool; its threads end with their task.

use std::io;

use gst::glib;
use gst::prelude::*;

use crate::export::NICE;

/// Sets the calling thread's niceness to [`NICE`] (Linux: per thread, inherited by the
/// threads it creates). Elsewhere a no-op.
pub(crate) fn lower_thread_priority() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        // SAFETY: a plain syscall on our own thread id; it only reads its integer arguments.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Gives every task (streaming thread) of `pipeline` a [`LowPriorityPool`] instead of
/// GLib's shared pool. Other bus messages pass on to the render loop.
pub(crate) fn use_low_priority_threads(pipeline: &gst::Pipeline) {
    let Some(bus) = pipeline.bus() else {
        return;
    };
    let pool: gst::TaskPool = glib::Object::new::<LowPriorityPool>().upcast();
    bus.set_sync_handler(move |_, msg| {
        let gst::MessageView::StreamStatus(status) = msg.view() else {
            return gst::BusSyncReply::Pass;
        };
        // Posted by the thread starting the task, before the task takes a thread.
        if status.type_() == gst::StreamStatusType::Create {
            let task = status
                .stream_status_object()
                .and_then(|v| v.get::<gst::Task>().ok());
            if let Some(task) = task {
                task.set_pool(&pool);
            }
        }
        gst::BusSyncReply::Drop
    });
}

glib::wrapper! {
    /// A task pool whose every task gets a new thread at nice [`NICE`], ending with it.
    pub(crate) struct LowPriorityPool(ObjectSubclass<pool::LowPriorityPool>) @extends gst::TaskPool, gst::Object;
}

mod pool {
    use gst::glib;
    use gst::subclass::prelude::*;

    #[derive(Default)]
    pub(crate) struct LowPriorityPool;

    #[glib::object_subclass]
    impl ObjectSubclass for LowPriorityPool {
        const NAME: &'static str = "ClasscastExportTaskPool";
        type Type = super::LowPriorityPool;
        type ParentType = gst::TaskPool;
    }

    impl ObjectImpl for LowPriorityPool {}
    impl GstObjectImpl for LowPriorityPool {}

    impl TaskPoolImpl for LowPriorityPool {
        type Handle = PoolThread;

        fn push(
            &self,
            func: gst::subclass::TaskPoolFunction,
        ) -> Result<Option<PoolThread>, glib::Error> {
            let spawned = std::thread::Builder::new()
                .name(format!("{}task", crate::export::PREFIX))
                .spawn(move || {
                    // Best effort: the render thread reports a failure to renice.
                    let _ = super::lower_thread_priority();
                    func.call();
                });
            let failed =
                |e: std::io::Error| glib::Error::new(gst::CoreError::Failed, &e.to_string());
            spawned
                .map(|handle| Some(PoolThread(handle)))
                .map_err(failed)
        }
    }

    /// The thread running one task; GStreamer joins it when the task stops.
    pub(crate) struct PoolThread(std::thread::JoinHandle<()>);

    impl gst::TaskHandle for PoolThread {
        fn join(self) {
            let _ = self.0.join();
        }
    }
}
