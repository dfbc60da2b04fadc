;;; rltab-eglot.el --- rltab for Emacs through eglot (Emacs 28 with elpa-eglot, or 29+)
;; Load it from init.el:  (load "/path/to/rltab-eglot.el")
;; Learning stays off unless you set rltab-learning to t before loading.
;;
;; eglot runs ONE server per major mode: this entry replaces whatever eglot would start for
;; Python (pyright, pylsp, ...).  To keep yours as well, set rltab-eglot-with to its command,
;; e.g. '("pylsp"), and install the rassumfrassum multiplexer (pip install rassumfrassum):
;; eglot then starts `rass -- pylsp -- rltab serve', one connection that speaks for both.
(require 'eglot)

(defvar rltab-command '("rltab" "serve") "How to start the rltab server.")
(defvar rltab-learning nil "Record prompts and learn from your Tab key (stored locally only).")
(defvar rltab-eglot-with nil
  "Your usual Python server's command, run beside rltab through `rass' (nil: rltab alone).")

(add-to-list 'eglot-server-programs
             `((python-mode python-ts-mode)
               . (,@(if rltab-eglot-with `("rass" "--" ,@rltab-eglot-with "--") nil)
                  ,@rltab-command
                  :initializationOptions (:learning (:enabled ,(if rltab-learning t :json-false))))))
;;; rltab-eglot.el ends here
