;;; rltab-eglot.el --- rltab for Emacs through eglot (Emacs 28 with elpa-eglot, or 29+)
;; Load it from init.el:  (load "/path/to/rltab-eglot.el")
;; Learning stays off unless you set rltab-learning to t before loading.
(require 'eglot)

(defvar rltab-command '("rltab" "serve") "How to start the rltab server.")
(defvar rltab-learning nil "Record prompts and learn from your Tab key (stored locally only).")

(add-to-list 'eglot-server-programs
             `(python-mode . (,@rltab-command
                              :initializationOptions (:learning (:enabled ,(if rltab-learning t :json-false))))))
;;; rltab-eglot.el ends here
